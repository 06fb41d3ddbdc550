"""Every Python and shell example of README.md and docs/ runs, or says why it cannot.

The rules are in :mod:`tests.doc_examples`. A page runs like a reader following it, in a
fresh temporary directory: Python blocks are executed in this process, in one namespace per
page, with a registry of specialists of their own; shell commands go through the CLI's
``main``, except ``orchestrator serve``, which runs as the installed command until it
announces that it serves. The installed entry point itself is exercised by the packaging
tests.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# The SDK's stdio_client binds sys.stderr as its default errlog when it is first imported: import
# it with the module, while sys.stderr is a real file, not later under capsys (which has no file
# descriptor for a page's server process to inherit).
import mcp.client.stdio  # noqa: F401
import pytest

from orchestrator.cli.main import main
from orchestrator.specialists import SpecialistRegistry, _registry
from orchestrator.specialists.backends import BackendRegistry
from orchestrator.specialists.backends import registry as backends

from .conftest import REPO
from .doc_examples import (
    NOT_RUN,
    PYTHON,
    Block,
    Command,
    doc_pages,
    page_blocks,
    problems,
    shell_commands,
)

PAGES = doc_pages(REPO)
# The examples that need a key say so; the rest must not reach a provider by accident.
API_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "VLLM_API_KEY")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TIMEOUT_S = 300


def _blocks(page: Path) -> list[Block]:
    return page_blocks(page, (REPO / page).read_text(encoding="utf-8"))


class PageRun:
    """A reader following one page: files written, Python run, commands typed, in order."""

    def __init__(
        self,
        page: Path,
        workdir: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.page = page
        self.workdir = workdir
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        self.namespace: dict[str, Any] = {"__name__": "__main__"}
        monkeypatch.chdir(workdir)
        monkeypatch.syspath_prepend(str(workdir))  # `import my_specialists`, as from that folder
        # As in an activated virtual environment: `orchestrator` and `python` are this one's.
        bin_dir = str(Path(sys.executable).parent)
        monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ.get("PATH", ""))
        for key in API_KEYS:
            monkeypatch.delenv(key, raising=False)
        # What a page registers stays with the page.
        monkeypatch.setattr(_registry, "_default", SpecialistRegistry())
        monkeypatch.setattr(backends, "_default", BackendRegistry())
        self._modules = set(sys.modules)

    def feed(self, block: Block) -> None:
        if block.file_name is not None:
            target = self.workdir / block.file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
        elif not block.runs:
            return
        elif block.lang in PYTHON:
            self.python(block)
        else:
            for command in shell_commands(block):
                self.command(command)

    def close(self) -> None:
        """Forget the modules the page imported from its own folder."""
        for name in set(sys.modules) - self._modules:
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin.startswith(str(self.workdir)):
                del sys.modules[name]

    def python(self, block: Block) -> None:
        # Compiled under the page's name with the page's line numbers: a traceback points
        # into the Markdown file.
        code = compile("\n" * block.line + block.code, str(block.page), "exec")
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(code, self.namespace)
        except Exception as exc:
            raise AssertionError(
                f"{block.where}: the example failed: {exc!r}\n{printed.getvalue()}"
            ) from exc
        lines = [line.strip() for line in printed.getvalue().splitlines()]
        position = 0
        for expected in block.expected_output:
            assert expected in lines[position:], (
                f"{block.where}: the page says it prints {expected!r}; it printed:\n"
                f"{printed.getvalue()}"
            )
            position = lines.index(expected, position) + 1

    def command(self, command: Command) -> None:
        args = command.argv[1:]
        where = f"{self.page}:{command.line}"
        redirect = None
        if len(args) >= 2 and args[-2] == ">":  # `orchestrator graph schema > FILE`
            args, redirect = args[:-2], self.workdir / args[-1]
        if _subcommand(args) == "serve":
            self.serve(where, args, command)
            return
        args = [expanded for arg in args for expanded in _glob(arg, self.workdir)]
        with self.monkeypatch.context() as patch:
            for key, value in command.env.items():
                patch.setenv(key, value)
            code = main(args)
        shown = self.capsys.readouterr()
        if redirect is not None:
            redirect.write_text(shown.out, encoding="utf-8")
        assert code == command.exit_code, (
            f"{where}: `{' '.join(command.argv)}` exited {code}, the page expects "
            f"{command.exit_code}\n{shown.out}\n{shown.err}"
        )

    def serve(self, where: str, args: list[str], command: Command) -> None:
        """Start the server as a user would, wait until it serves, then stop it."""
        http = _option(args, "--transport") == "http"
        if http:
            host = _option(args, "--host") or "127.0.0.1"
            assert host in LOOPBACK, (
                f'{where}: a server on {host} is not started by the tests; title="{NOT_RUN} ..."'
            )
            args = _with_option(args, "--port", "0")  # a free port, not the one in the page
        log_path = self.workdir / ".serve.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("orchestrator")), *args],
                cwd=self.workdir,
                env={**os.environ, **command.env},
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            assert proc.stdin is not None
            try:
                deadline = time.monotonic() + TIMEOUT_S
                while "serving " not in log_path.read_text(errors="replace"):
                    assert proc.poll() is None, f"{where}: stopped:\n{log_path.read_text()}"
                    assert time.monotonic() < deadline, f"{where}: not serving after {TIMEOUT_S} s"
                    time.sleep(0.05)
                if http:
                    proc.terminate()
                proc.stdin.close()  # the client goes away: a stdio server ends
                code = proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
                proc.stdin.close()
        stopped = code == 0 or (http and code == -15)
        assert stopped, f"{where}: exited {code}:\n{log_path.read_text()}"


def _glob(arg: str, workdir: Path) -> list[str]:
    """A shell's wildcard expansion: the sorted matches, or the word itself when none."""
    if not any(c in arg for c in "*?["):
        return [arg]
    return sorted(str(p.relative_to(workdir)) for p in workdir.glob(arg)) or [arg]


def _subcommand(args: list[str]) -> str | None:
    """The first word that is not an option of the root command."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--log-level",):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _with_option(args: list[str], name: str, value: str) -> list[str]:
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == name and i + 1 < len(args):
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return [*out, name, value]


def test_every_example_runs_or_says_why() -> None:
    found = [problem for page in PAGES for block in _blocks(page) for problem in problems(block)]
    assert not found, "\n".join(found)


def test_the_pages_have_examples_that_run() -> None:
    runnable = {page for page in PAGES for block in _blocks(page) if block.runs}
    assert Path("README.md") in runnable
    assert Path("docs/getting-started.md") in runnable


@pytest.mark.parametrize("page", [p for p in PAGES if any(b.runs for b in _blocks(p))], ids=str)
def test_page_examples_run(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if page == Path("README.md"):
        # The README speaks to a reader in a checkout, with the shipped graphs at hand.
        shutil.copytree(REPO / "graphs", tmp_path / "graphs", ignore=shutil.ignore_patterns("*.py"))
    run = PageRun(page, tmp_path, monkeypatch, capsys)
    try:
        for block in _blocks(page):
            run.feed(block)
    finally:
        run.close()


# -- the collector itself ----------------------------------------------------------------------

SAMPLE = """\
# A page

```python
print("hello")
#> hello
```

```sh title="Not run here: needs a GPU"
vllm serve Qwen/Qwen3-1.7B
```

```yaml title="g.yaml"
version: 1
```

- a list item with a block:

    ```sh
    orchestrator graph validate g.yaml \\
        --json  # exit code 3
    MY_TOKEN=x orchestrator serve sentiment
    ```

```sh
make demo
```

```python title="Needs a GPU"
pass
```

```python hl="1"
pass
```
"""


def test_the_collector_reads_blocks_options_and_commands() -> None:
    blocks = page_blocks(Path("page.md"), SAMPLE)
    assert [(b.lang, b.line) for b in blocks] == [
        ("python", 3),
        ("sh", 8),
        ("yaml", 12),
        ("sh", 18),
        ("sh", 24),
        ("python", 28),
        ("python", 32),
    ]
    hello, gpu, graph, listed, make, titled, unknown = blocks
    assert hello.runs and hello.expected_output == ["hello"]
    assert gpu.not_run_reason == "needs a GPU" and not gpu.runs
    assert graph.file_name == "g.yaml" and graph.code == "version: 1\n"
    first, second = shell_commands(listed)
    assert first.argv == ["orchestrator", "graph", "validate", "g.yaml", "--json"]
    assert first.exit_code == 3 and first.line == 19
    assert second.env == {"MY_TOKEN": "x"} and second.argv[:2] == ["orchestrator", "serve"]
    assert [problems(b) for b in (hello, gpu, graph, listed)] == [[], [], [], []]
    assert "not an orchestrator command" in problems(make)[0]
    assert "neither a file name" in problems(titled)[0]
    assert "unknown option(s) hl" in problems(unknown)[0]


def test_wildcards_expand_as_in_a_shell(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yaml", "c.json"):
        (tmp_path / name).write_text("")
    assert _glob("*.yaml", tmp_path) == ["a.yaml", "b.yaml"]
    assert _glob("*.toml", tmp_path) == ["*.toml"]
    assert _glob("plain", tmp_path) == ["plain"]


def test_the_serve_helpers_pick_a_free_port() -> None:
    args = ["serve", "sentiment", "--transport", "http", "--port", "8765"]
    assert _subcommand(["--log-level", "INFO", *args]) == "serve"
    assert _option(args, "--transport") == "http"
    assert _with_option(args, "--port", "0")[-2:] == ["--port", "0"]
    assert "8765" not in _with_option(args, "--port", "0")
