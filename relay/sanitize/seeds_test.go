package sanitize

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestWriteFuzzSeeds regenerates testdata/fuzz/* when
// CORDON_WRITE_FUZZ_SEEDS=1; otherwise it checks the committed seeds exist.
func TestWriteFuzzSeeds(t *testing.T) {
	seeds := fuzzSeeds(t)
	write := os.Getenv("CORDON_WRITE_FUZZ_SEEDS") == "1"
	for name, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		if write {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for i, args := range list {
			var b strings.Builder
			b.WriteString("go test fuzz v1\n")
			for _, a := range args {
				switch v := a.(type) {
				case []byte:
					b.WriteString("[]byte(" + strconv.Quote(string(v)) + ")\n")
				case bool:
					b.WriteString("bool(" + strconv.FormatBool(v) + ")\n")
				}
			}
			path := filepath.Join(dir, "seed-"+strconv.Itoa(i))
			if write {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if got, err := os.ReadFile(path); err != nil || string(got) != b.String() {
				t.Errorf("%s missing or stale (CORDON_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds)", path)
			}
		}
	}
}

// records encodes access units for fuzzInput.
func records(flags byte, uuid []byte, aus ...[][]byte) []byte {
	b := append([]byte{flags}, uuid...)
	for i, au := range aus {
		if i > 0 {
			b = append(b, 0)
		}
		for _, nal := range au {
			if len(nal) > 255 {
				panic("seed NAL longer than 255 bytes")
			}
			b = append(b, byte(len(nal)))
			b = append(b, nal...)
		}
	}
	return b
}

func fuzzSeeds(t *testing.T) map[string][][]any {
	axis := AxisSignedVideoUUID()
	epbUUID := [16]byte{0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}
	sps, pps := b64(t, sps264B64), b64(t, pps264B64)
	vps5, sps5, pps5 := b64(t, vps265B64), b64(t, sps265B64), b64(t, pps265B64)
	ffType := []byte{0x06, 0xFF, 0xFF, 0x05, 16}
	ffType = append(append(ffType, axis[:]...), 0x80)
	lying := append(append([]byte{0x06, 0x05, 40}, axis[:]...), 0x80)
	huge := append(append([]byte{0x06, 0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0x10}, axis[:]...), 0x80)
	ffSize := sei264(udu(axis, make([]byte, 250)...)) // size 266: 0xFF 0x0B
	vendor := sei264(seiMsg{typ: 128, payload: []byte("HIK private")}, seiMsg{typ: 240, payload: []byte{1, 2}})
	mixed := sei264(udu(axis, 1), udu(vendorUUID, 2))
	idr, p := slice264(5, 40), slice264(1, 20)

	h264Seeds := [][]any{
		{records(5, nil,
			[][]byte{{0x09, 0xF0}, sps, pps, sei264(udu(axis, 1, 2)), vendor, idr},
			[][]byte{p}, [][]byte{{0x0C, 0xFF, 0xFF, 0x80}, p, {0x0A}})},
		{records(0, nil, [][]byte{sps, pps}, [][]byte{idr}, [][]byte{p})},
		{records(4, nil, [][]byte{idr}, [][]byte{sps}, [][]byte{pps}, [][]byte{p})},
		{records(3, epbUUID[:], [][]byte{sei264(udu(epbUUID, 0, 0, 0)), mixed, idr}, [][]byte{sei264(udu(axis))}, [][]byte{p})},
		{records(1, nil, [][]byte{ffType, lying, huge, p})},
		{records(4, nil, [][]byte{{0xE5, 1, 2}, {0x65}, {0x02, 1}, {0x0E, 1}, {0x14, 1}, {0x18, 1, 2}, {0x1C, 0x85, 1}, idr})},
	}
	h265Seeds := [][]any{
		{records(5, nil,
			[][]byte{{35 << 1, 1, 0x50}, vps5, sps5, pps5, sei265(false, udu(axis, 9)), sei265(true, seiMsg{typ: 128, payload: []byte{1}}), nal265(19, 40)},
			[][]byte{nal265(1, 20), {38 << 1, 1, 0xFF}})},
		{records(0, nil, [][]byte{vps5, sps5, pps5}, [][]byte{nal265(21, 30)}, [][]byte{nal265(0, 10)})},
		{records(4, nil, [][]byte{nal265(20, 30)}, [][]byte{{1 << 1, 1<<3 | 1, 5}, {1 << 1, 0, 5}, {0x80 | 19<<1, 1, 5}, nal265(22, 4), nal265(48, 4), nal265(1, 4)})},
		{records(3, epbUUID[:], [][]byte{sei265(false, udu(epbUUID, 0, 0)), nal265(1, 10)})},
	}
	seiSeeds := [][]any{
		{false, sei264(udu(axis, 1, 2, 3)), []byte{}},
		{false, sei264(udu(epbUUID, 0, 0, 0)), epbUUID[:]},
		{false, ffType, []byte{}},
		{false, lying, []byte{}},
		{false, huge, []byte{}},
		{false, ffSize, []byte{}},
		{false, vendor, []byte{}},
		{false, mixed, vendorUUID[:]},
		{false, sei264(udu(axis), seiMsg{typ: 5}), []byte{}},
		{false, []byte{0x06, 0, 0, 3, 0x80}, []byte{}},
		{false, []byte{0x06, 5, 0, 0, 3, 0x80, 0, 0}, []byte{}},
		{true, sei265(false, udu(axis, 1)), []byte{}},
		{true, sei265(true, seiMsg{typ: 0xFF + 0xFF + 5, payload: []byte{1}}), []byte{}},
	}
	return map[string][][]any{"FuzzFilterH264": h264Seeds, "FuzzFilterH265": h265Seeds, "FuzzParseSEI": seiSeeds}
}
