package provider

import (
	"maps"
	"testing"
)

func TestSetLogLevels(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // every variable of sdkLogLevelVars
		keep map[string]string
	}{
		{name: "nothing shown", env: map[string]string{}, want: "OFF"},
		{name: "core only", env: map[string]string{"TF_LOG_CORE": "TRACE"}, want: "OFF"},
		{name: "TF_LOG", env: map[string]string{"TF_LOG": "debug"}, want: "DEBUG"},
		{name: "provider over TF_LOG", env: map[string]string{"TF_LOG": "TRACE", "TF_LOG_PROVIDER": "INFO"}, want: "INFO"},
		{name: "json", env: map[string]string{"TF_LOG": "JSON"}, want: "TRACE"},
		{name: "unknown", env: map[string]string{"TF_LOG": "1"}, want: "TRACE"},
		{name: "off", env: map[string]string{"TF_LOG_PROVIDER": "off"}, want: "OFF"},
		{
			name: "user's own kept", env: map[string]string{"TF_LOG_PROVIDER": "WARN", "TF_LOG_SDK_PROTO": "trace"},
			want: "WARN", keep: map[string]string{"TF_LOG_SDK_PROTO": "trace"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := maps.Clone(tc.env)
			err := SetLogLevels(func(k string) string { return env[k] }, func(k, v string) error { env[k] = v; return nil })
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range sdkLogLevelVars {
				want := tc.want
				if k, ok := tc.keep[v]; ok {
					want = k
				}
				if env[v] != want {
					t.Errorf("%s = %q, want %q", v, env[v], want)
				}
			}
		})
	}
}
