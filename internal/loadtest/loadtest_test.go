package loadtest

import "testing"

func TestParseMix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Mix{
		"get":               {Get: 1},
		"mixed":             {Get: 90, List: 4, Create: 3, Moderate: 3},
		"get=5,create=1":    {Get: 5, Create: 1},
		"list=1,moderate=2": {List: 1, Moderate: 2},
	} {
		got, err := ParseMix(in)
		if err != nil || got != want {
			t.Errorf("ParseMix(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"get=x", "fly=1", "get=0", "get=-1"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}
