"""Progress that reads well in a log file: when stderr is not a terminal, a bar is one line every 30 s."""
from fyi_apps.cli import main
from fyi_apps.runtime import LogLines as _LogLines


class _Sink:
    def __init__(self):
        self.text = ""

    def write(self, t):
        self.text += t
        return len(t)

    def flush(self):
        pass

    def isatty(self):
        return False


def test_bar_redraws_become_few_lines():
    sink = _Sink()
    log = _LogLines(sink, every=3600)
    log.write("plain message\n")
    for i in range(50):
        log.write(f"\rwork:  {2 * i}%|  | {i}/50")
    log.write("\rwork: 100%|##| 49/50 [00:01]")  # tqdm rounds up to 100 % before the end
    log.write("\rwork: 100%|##| 50/50 [00:01]")
    log.write("\rwork: 100%|##| 50/50 [00:02]\n")  # the closing redraw of a finished bar
    lines = sink.text.splitlines()
    assert lines == ["plain message", "work:  0%|  | 0/50", "work: 100%|##| 50/50 [00:01]"]


def test_the_cli_writes_progress_as_lines_to_a_log(tmp_path, capsys):
    code = main(["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1", "--iterations", "60",
                 "-o", str(tmp_path / "s.safetensors"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0 and "\r" not in err
    bar_lines = [ln for ln in err.splitlines() if "it/s" in ln or "?it/s" in ln]
    assert 1 <= len(bar_lines) <= 6  # the start, the end, and one line per 30 s at most


def test_library_bars_write_lines_to_a_log_file_outside_the_cli(digits, monkeypatch):
    """A Python user (or a benchmark) whose stderr is a file gets lines, not carriage-return redraws."""
    import sys

    from fyi_apps.runtime import progress_bar

    sink = _Sink()
    monkeypatch.setattr(sys, "stderr", sink)
    for _ in progress_bar(range(200), desc="steps", mininterval=0):
        pass
    assert "\r" not in sink.text and sink.text.count("\n") <= 3 and "200/200" in sink.text
