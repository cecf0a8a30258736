package provider

import "strings"

// The log level variables of terraform-plugin-log that a provider served
// by terraform-plugin-framework reads: the SDK's root logger, its proto and
// framework subsystems, and this provider's own logger (tflog).
var sdkLogLevelVars = []string{"TF_LOG_SDK", "TF_LOG_SDK_PROTO", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_PROVIDER_IMMUTABLE"}

// SetLogLevels sets, where unset, the provider's log levels to the level
// at which Terraform and OpenTofu show a provider's logs: TF_LOG_PROVIDER,
// else TF_LOG; none shows nothing ("OFF"); "JSON", or a value they do not
// know, is TRACE (what they do with it). Unset, terraform-plugin-log logs
// at TRACE: every request writes dozens of JSON lines to stderr that the
// CLI parses and then drops, about a sixth of the CPU of a plan and apply
// of the build pipeline example, provider and CLI together. Call it before
// serving (main); getenv and setenv are os.Getenv and os.Setenv.
func SetLogLevels(getenv func(string) string, setenv func(key, value string) error) error {
	level := strings.ToUpper(getenv("TF_LOG_PROVIDER"))
	if level == "" {
		level = strings.ToUpper(getenv("TF_LOG"))
	}
	switch level {
	case "":
		level = "OFF"
	case "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF":
	default: // JSON, or unknown: everything
		level = "TRACE"
	}
	for _, v := range sdkLogLevelVars {
		if getenv(v) != "" {
			continue // set by the user: theirs
		}
		if err := setenv(v, level); err != nil {
			return err
		}
	}
	return nil
}
