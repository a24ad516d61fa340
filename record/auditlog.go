package record

import (
	"fmt"
	"strconv"
	"strings"

	"cordon/auth/audit"
)

// AuditTrail is what AuditLog writes to: cordon's audit log (*audit.Log),
// whose AppendSeq returns the seq of the caller's own line.
type AuditTrail interface {
	AppendSeq(audit.Event) (uint64, error)
}

// AuditLog is the Auditor over cordon's audit log: one `playback` line per
// playback, one `export` line per export (its seq goes into the manifest
// as audit_seq), and one more `export` line when an audited export then
// failed. Wiring: record.Recorder{..., Auditor: record.AuditLog{Trail: log}}.
type AuditLog struct {
	Trail AuditTrail
	// Protocol of the lines ("" = "http").
	Protocol string
}

func (a AuditLog) protocol() string {
	if a.Protocol == "" {
		return "http"
	}
	return a.Protocol
}

// Playback writes the `playback` line: who played which span of a camera.
func (a AuditLog) Playback(p PlaybackAudit) error {
	_, err := a.Trail.AppendSeq(audit.Event{Event: audit.Playback, Actor: p.Principal, Camera: p.Camera,
		Remote: p.Remote, Protocol: a.protocol(),
		Detail: "start=" + FormatTime(p.Start) + " end=" + FormatTime(p.End)})
	return err
}

// Export writes an `export` line and returns its seq. Detail: the export
// id, the span, the reason and the SHA-256 of every file; or, for a
// failure, the id and why it does not exist.
func (a AuditLog) Export(e ExportAudit) (uint64, error) {
	var d strings.Builder
	fmt.Fprintf(&d, "id=%s", e.ID)
	if e.Failed != "" {
		fmt.Fprintf(&d, " failed=%s (the export does not exist)", strconv.Quote(e.Failed))
	} else {
		fmt.Fprintf(&d, " start=%s end=%s reason=%s files=", FormatTime(e.Start), FormatTime(e.End), strconv.Quote(e.Reason))
		for i, f := range e.Files {
			if i > 0 {
				d.WriteByte(',')
			}
			d.WriteString(f.Name + ":" + f.SHA256)
		}
	}
	actor := e.Principal
	if actor == "" {
		actor = "cordon"
	}
	return a.Trail.AppendSeq(audit.Event{Event: audit.Export, Actor: actor, Camera: e.Camera,
		Remote: e.Remote, Protocol: a.protocol(), Detail: d.String()})
}
