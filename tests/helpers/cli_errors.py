"""What a person sees when a command fails: one line on stderr and the exit code."""


def one_error_line(result, code, *words):
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]
