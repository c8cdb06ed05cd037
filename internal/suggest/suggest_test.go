package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"image", "command", "stop_grace_period", "read_only"}
	for key, want := range map[string]string{"imag": "image", "comand": "command", "stop-grace-period": "stop_grace_period", "readonly": "read_only", "zzz": ""} {
		if got := Closest(key, names); got != want {
			t.Errorf("Closest(%q) = %q, want %q", key, got, want)
		}
	}
}
