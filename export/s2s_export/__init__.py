"""s2s_export writes s2s model directories for the Go host."""
