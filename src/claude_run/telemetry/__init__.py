"""Claude Code's OpenTelemetry output: decode, receive, fold into records, export (Prometheus, OTLP)."""
