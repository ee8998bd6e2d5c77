"""The `tinygrad-s2s` console script's entry point: `tinygrad_s2s.cli.main`, with Ctrl-C caught from
the first moment.

It lives outside the package on purpose. Importing any `tinygrad_s2s.*` module first runs the package's
`__init__`, which imports NumPy and every layer (about 0.3 s); a Ctrl-C then arrived before `main` could
catch it and printed a traceback. This module imports only `signal` and `sys`, so the package's import
happens inside the `try`. (Making the package's `__init__` lazy instead would change what
`import tinygrad_s2s` does for every library user, for the sake of the command line.)
"""
import signal
import sys

def main() -> int:
    """Import and run the command line; a Ctrl-C at any point is one line and exit code 130."""
    interrupted = []

    def on_sigint(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    # Only while importing, and only where Ctrl-C raises KeyboardInterrupt at all (not where the shell
    # started us with SIGINT ignored): noted, because a KeyboardInterrupt raised inside an extension
    # module's initialisation comes out as an ImportError (NumPy: 'PyCapsule_Import could not import').
    watch = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    try:
        if watch:
            signal.signal(signal.SIGINT, on_sigint)
        try:
            from tinygrad_s2s.cli import main as run_command_line
        except Exception:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        finally:
            if watch:
                signal.signal(signal.SIGINT, signal.default_int_handler)
        return run_command_line()
    except KeyboardInterrupt:       # cli.main's own line and code for a later Ctrl-C
        print("tinygrad-s2s: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
