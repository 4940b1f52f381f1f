package cli

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestDisplayStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, out, err string
	}{
		{"status", `{"status":"sha256:abc"}` + "\r\n", "sha256:abc\n", ""},
		{"ids and streams", `{"id":"89b4dde58de1","status":"Pushed"}{"stream":"Step 1/2\n"}`, "89b4dde58de1: Pushed\nStep 1/2\n", ""},
		{"error detail", `{"status":"a"}` + "\n" + `{"errorDetail":{"message":"disk full"},"error":"disk full"}` + "\n" + `{"status":"b"}`, "a\n", "disk full"},
		{"legacy error", `{"error":"old daemon"}`, "", "old daemon"},
		{"garbage", `{"status":`, "", "read daemon stream: unexpected EOF"},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		var out strings.Builder
		err := displayStream(strings.NewReader(tt.in), &out)
		if out.String() != tt.out {
			t.Errorf("%s: output %q, want %q", tt.name, out.String(), tt.out)
		}
		if got := errString(err); got != tt.err {
			t.Errorf("%s: error %q, want %q", tt.name, got, tt.err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestHistoryNotHuman(t *testing.T) {
	t.Parallel()
	host, imgs := startDaemon(t)
	hist, err := imgs.ImageHistory(context.Background(), "berth-multi")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(hist[0].Created, 0).Format(time.RFC3339)
	out, errOut, code := run(t, host, nil, "history", "-H=false", "--no-trunc", "berth-multi")
	want := "IMAGE                                                                     CREATED AT             CREATED BY                                                  SIZE        COMMENT\n" +
		multiID + "   " + at + "   /bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"ls -la /payload\"]   0           \n" +
		"<missing>                                                                 " + at + "   /bin/sh -c head -c 50331648 /dev/urandom > /payload/x       50331648    \n" +
		"<missing>                                                                 " + at + "                                                               116000000   Imported from -\n"
	if out != want || errOut != "" || code != 0 {
		t.Fatalf("history -H=false:\n%s\nwant:\n%s\nstderr %q code %d", out, want, errOut, code)
	}
}
