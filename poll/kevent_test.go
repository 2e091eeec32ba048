package poll

import "testing"

// The kqueue backend cannot run on Linux; its translation of records into
// Event flags is checked here with synthetic records.
func TestKeventTranslation(t *testing.T) {
	cases := []struct {
		name   string
		write  bool
		eof    bool
		fflags uint32
		failed bool
		want   uint32
	}{
		{name: "read ready", want: Readable},
		{name: "write ready", write: true, want: Writable},
		{name: "read EOF after FIN: data may remain", eof: true, want: Readable | ReadHup},
		{name: "read EOF with socket error", eof: true, fflags: 54 /* ECONNRESET */, want: Readable | ReadHup | Hup | Writable},
		{name: "write EOF: peer gone", write: true, eof: true, want: Writable | Hup | Readable},
		{name: "EV_ERROR record", failed: true, want: Readable | Writable | Hup},
		{name: "EV_ERROR on write filter", write: true, failed: true, want: Readable | Writable | Hup},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := kevFlags(tc.write, tc.eof, tc.fflags, tc.failed); got != tc.want {
				t.Errorf("kevFlags = %04b, want %04b", got, tc.want)
			}
		})
	}
}

// Hang-up must always come with readiness, so that a goroutine parked on
// the direction wakes and learns the outcome from its syscall.
func TestHangupImpliesReadiness(t *testing.T) {
	for _, write := range []bool{false, true} {
		for _, eof := range []bool{false, true} {
			for _, ff := range []uint32{0, 5} {
				for _, failed := range []bool{false, true} {
					f := kevFlags(write, eof, ff, failed)
					if f&ReadHup != 0 && f&Readable == 0 || f&Hup != 0 && f&(Readable|Writable) != Readable|Writable {
						t.Errorf("kevFlags(%v,%v,%d,%v) = %04b: hang-up without readiness", write, eof, ff, failed, f)
					}
				}
			}
		}
	}
}
