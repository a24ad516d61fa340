package whep

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs to slog: pion errors become warnings, pion
// warnings debug lines (pion warns about routine things such as a peer
// closing), everything else is dropped.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) out(level slog.Level, msg string) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, msg)
	}
}

func (pionLogger) Trace(string)          {}
func (pionLogger) Tracef(string, ...any) {}
func (pionLogger) Debug(string)          {}
func (pionLogger) Debugf(string, ...any) {}
func (pionLogger) Info(string)           {}
func (pionLogger) Infof(string, ...any)  {}
func (l pionLogger) Warn(msg string)     { l.out(slog.LevelDebug, msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.out(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (l pionLogger) Error(msg string) { l.out(slog.LevelWarn, msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.out(slog.LevelWarn, fmt.Sprintf(format, args...))
}
