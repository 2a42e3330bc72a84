package human

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0:                "0 B",
		1023:             "1023 B",
		1024:             "1.0 KiB",
		1536:             "1.5 KiB",
		12 * 1024 * 1024: "12.0 MiB",
		3 << 30:          "3.0 GiB",
		5<<40 + 512<<30:  "5.5 TiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
