package console

import "testing"

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 9208600: "92,086.00", 123456: "1,234.56", 100000000: "1,000,000.00", -123456: "-1,234.56"} {
		if got := yuan(fen); got != want {
			t.Errorf("yuan(%d) = %q, want %q", fen, got, want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	for phone, want := range map[string]string{"13812341234": "138****1234", "+8613812341234": "+86****1234", "12345": "****45", "": "", "1": "****"} {
		if got := maskPhone(phone); got != want {
			t.Errorf("maskPhone(%q) = %q, want %q", phone, got, want)
		}
	}
}

func TestTelHref(t *testing.T) {
	for phone, want := range map[string]string{"138 1234-1234": "tel:13812341234", "+86 138": "tel:+86138", "javascript:alert(1)": "tel:1"} {
		if got := string(telHref(phone)); got != want {
			t.Errorf("telHref(%q) = %q, want %q", phone, got, want)
		}
	}
}
