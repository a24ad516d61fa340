package harden

import (
	"context"
	"testing"

	"cordon/democam"
)

// BenchmarkDryRun: one read-only check of every setting of an emulated
// camera over loopback (requests, Digest, parsing), per vendor.
func BenchmarkDryRun(b *testing.B) {
	for _, vendor := range []string{democam.VendorHikvision, democam.VendorDahua} {
		b.Run(vendor, func(b *testing.B) {
			cam := &democam.VendorAPI{Vendor: vendor, Listen: "127.0.0.91:0", Username: camUser, Password: camPass}
			if err := cam.Initialize(); err != nil {
				b.Fatal(err)
			}
			defer cam.Close()
			tg := Target{Camera: "bench", Base: mustURL(b, cam.URL()), Username: camUser, Password: camPass, Vendor: "auto"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if r := Run(context.Background(), tg, testWanted, fastOptions()); r.Error != "" {
					b.Fatal(r.Error)
				}
			}
			b.ReportMetric(float64(len(cam.Requests()))/float64(b.N), "authed-requests/op")
		})
	}
}
