"""errors holds the exceptions the exporters raise for bad input or a failed check."""


class ExportError(Exception):
    """ExportError is a problem with the input or the output directory.

    Its message is lower-case and says what to do; the CLI prints it and
    exits with status 1.
    """


class CheckError(ExportError):
    """CheckError is a self-check mismatch: an exported graph's outputs differ
    from the PyTorch model's by more than the tolerance."""
