"""The command line as click parses it, in process: the default command, what reaches each
command, usage errors (exit 2, naming what was wrong), help, --version and completion."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from elfcost import cli
from elfcost.errors import ElfcostError, Exit
from elfcost.pipeline import Scenario


def invoke(*argv: str) -> Result:
    return CliRunner().invoke(cli.main, list(argv), prog_name="elfcost")


def params(name: str, *argv: str) -> dict[str, Any]:
    """What the command `name` is called with for argv (what follows its name)."""
    # With the group's settings: a command keeps the help option of the first context it sees.
    top = click.Context(cli.main, info_name="elfcost", **cli.main.context_settings)
    command = cli.main.get_command(top, name)
    assert command is not None
    return command.make_context(name, list(argv), parent=top).params


def usage_error(*argv: str) -> str:
    r = invoke(*argv)
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert r.stderr.startswith("Usage: elfcost"), r.stderr
    return r.stderr.strip().splitlines()[-1]


def test_route_a_command_an_option_a_path_or_a_program_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = click.Context(cli.main, info_name="elfcost")
    route = cli.main.route
    assert route(ctx, "deps") == ["deps"]
    assert route(ctx, "--format") == ["estimate", "--format"]
    assert route(ctx, "--") == ["estimate", "--"]
    assert route(ctx, "/bin/true") == ["estimate", "/bin/true"]
    assert route(ctx, "./nothing") == ["estimate", "./nothing"]  # its error is estimate's
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prog").write_bytes(b"")
    assert route(ctx, "prog") == ["estimate", "prog"]  # a file here, as a shell would not
    assert route(ctx, "sleep") == ["estimate", shutil.which("sleep")]
    with pytest.raises(click.UsageError) as exc:
        route(ctx, "estimat")
    assert exc.value.format_message() == "No such command 'estimat'. Did you mean 'estimate'?"


def test_the_default_command_is_estimate() -> None:
    assert invoke("/bin/true").stdout == invoke("estimate", "/bin/true").stdout
    r = invoke("--traceback", "--format", "json", "/bin/true")
    assert r.exit_code == 0 and '"binary": "/bin/true"' in r.stdout
    r = invoke("sleep")  # found on PATH: the report names the file it analysed
    assert r.exit_code == 0 and f"{shutil.which('sleep')}:" in r.stdout


def test_every_program_named_without_a_slash_is_looked_up_on_path() -> None:
    """Not only the first word after `elfcost`: each BINARY of estimate, deps, explain, as a
    shell finds a program; one not found is still "no such file" (exit 3)."""
    sleep, true = shutil.which("sleep"), shutil.which("true")
    r = invoke("sleep", "true")
    assert r.exit_code == 0 and f"{sleep}:" in r.stdout and f"{true}:" in r.stdout, r.output
    r = invoke("estimate", "true")
    assert r.exit_code == 0 and f"{true}:" in r.stdout
    assert invoke("deps", "true").stdout.startswith(f"{true} (executable")
    assert invoke("explain", "true").exit_code == 0
    r = invoke("estimate", "true", "no-such-program-here")
    assert r.exit_code == 3 and "no-such-program-here: no such file" in r.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["estimat", "/bin/true"], "No such command 'estimat'. Did you mean 'estimate'?"),
        (["chek", "B"], "Did you mean 'check'?"),
        (["no-such-thing"], "No such command 'no-such-thing'."),
        (["--page-size", "3K", "B"], "Invalid value for '--page-size': page size must be 4K, 16K"),
        (["--page-size", "x", "B"], "'x' is not a size"),
        (["-n", "0", "B"], "'-n' / '--instances': 0 is not in the range 1<=x<=1000000."),
        (["--format", "xml", "B"], "Invalid value for '--format': 'xml' is not one of"),
        (["--form", "json", "B"], "No such option '--form'. Did you mean '--format'?"),
        (["estimate"], "Missing argument 'BINARIES...'."),
        (["explain", "A", "B"], "Got unexpected extra argument (B)"),
        (["diff", "A"], "Missing argument 'NEW'."),
        (["check", "--max-private-dirty", "lots", "B"], "'lots' is not a size"),
        (["measure", "/bin/sh", "-c", "x"], "No such option '-c'"),
        (["measure", "--env", "FOO", "--", "/bin/true"], "'FOO' is not NAME=VALUE"),
        (["measure", "--timeout", "x"], "'x' is not a valid float."),
        (["measure"], "give exactly one of: -- COMMAND, --pid, --smaps, --capture"),
        (["--traceback"], "Missing command."),
        (["scan"], "give PATHS, or --root DIR to scan a whole root"),
        (["scan", "--format", "parquet", "B"], "--format parquet writes a directory: give -o DIR"),
    ],
)
def test_usage_error_is_2_and_names_what_was_wrong(argv: list[str], message: str) -> None:
    line = usage_error(*argv)
    assert line.startswith("Error: ") and message in line, line


def test_root_must_be_an_existing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert "does not exist" in usage_error("--root", str(missing), "/bin/true")
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert "is a file" in usage_error("deps", "--root", str(a_file), "/bin/true")
    assert "'--new-root'" in usage_error("diff", "--new-root", str(missing), "a", "b")
    assert "is a directory" in usage_error("check", "--budget", str(tmp_path), "/bin/true")
    only = f"-o {tmp_path}: a directory (only --format parquet writes one)"
    assert only in usage_error("scan", "-o", str(tmp_path), "/bin/true")


def test_options_and_words_mix_and_dash_dash_ends_the_options() -> None:
    v = params("estimate", "A", "--format", "json", "B", "-n", "3", "--", "--odd-name")
    assert v["binaries"] == ("A", "B", "--odd-name")
    assert v["fmt"] == "json" and v["instances"] == 3
    m = params("measure", "--", "prog", "--its-option", "-x")
    assert m["command"] == ("prog", "--its-option", "-x")
    m = params("measure", "--at", "entry", "--", "/bin/sleep", "100")
    assert m["command"] == ("/bin/sleep", "100") and m["at"] == "entry"
    v = params("validate", "--format", "json", "/usr/bin/curl", "--", "-K", "-")
    assert (v["binary"], v["args"], v["fmt"]) == ("/usr/bin/curl", ("-K", "-"), "json")
    v = params("validate", "/bin/sleep", "--format", "json", "--", "100")
    assert (v["binary"], v["args"]) == ("/bin/sleep", ("100",))
    v = params("validate", "--", "./daemon", "--foreground")
    assert (v["binary"], v["args"]) == ("./daemon", ("--foreground",))
    assert params("diff", "old", "new", "-n", "129")["instances"] == 129


def test_an_option_value_may_start_with_a_dash() -> None:
    assert params("measure", "--follow", "-bash", "--", "/bin/true")["follow"] == "-bash"
    assert params("estimate", "--ld-library-path", "-L", "B")["host"].ld_library_path == ("-L",)
    assert params("estimate", "-o", "-x.txt", "B")["output"] == "-x.txt"


def test_defaults_repeatable_options_and_flags_the_policy_decides() -> None:
    v = params("check", "B")
    limits = v["policy"].defaults
    assert limits.no_missing is False and limits.no_textrel is False  # the policy file decides
    assert limits.instances == 1 and limits.max_private_dirty is None
    assert v["policy"].baseline_file is None and v["update_baseline"] is False
    assert v["host"].root == "/" and v["host"].ld_library_path is None and v["fmt"] == "text"
    v = params("check", "--strict", "--no-textrel", "--max-fleet", "1.5MiB", "B")
    limits = v["policy"].defaults
    assert limits.no_missing is True and limits.no_textrel is True
    assert limits.max_fleet == 1572864
    m = params("measure", "--pid", "1", "--pid", "2", "--env", "A=1", "--env", "B=x=y")
    assert m["pids"] == (1, 2) and m["start"].env == ("A=1", "B=x=y")
    s = params("measure")["start"]
    assert (s.settle, s.timeout, s.delay, s.clean_env) == (0.3, 10.0, None, False)
    assert params("measure")["at"] == "idle"
    e = params("estimate", "--page-size", "16K", "--assume", "musl", "B")
    assert (e["scenario"].page_size, e["scenario"].assume, e["instances"]) == (16384, "musl", 1)
    assert params("estimate", "B")["scenario"] == Scenario()
    assert params("deps", "B")["strict"] is False
    s = params("scan")
    assert (s["paths"], s["top"], s["jobs"], s["no_cache"]) == ((), 10, None, False)


def test_options_together_are_one_value_whatever_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group's value is made once all of its options are read: given first, last or not at
    all, in any order, and from the environment as from the command line."""
    llp = ("--ld-library-path", "/x:/y")
    root = ("--root", str(tmp_path))
    for argv in ([*llp, *root, "B"], ["B", *root, *llp], [*root, "B", *llp]):
        host = params("deps", *argv)["host"]
        assert (host.root, host.ld_library_path) == (str(tmp_path), ("/x", "/y"))
    monkeypatch.setenv("LD_LIBRARY_PATH", "/from/env")
    assert params("deps", "--env-ld-library-path", "B")["host"].ld_library_path == ("/from/env",)
    assert params("deps", "B")["host"].ld_library_path is None


def test_version() -> None:
    for argv in (["--version"], ["--traceback", "--version"], ["--version", "/bin/true"]):
        r = invoke(*argv)
        assert (r.exit_code, r.stdout) == (0, f"elfcost, version {version('elfcost')}\n")


@pytest.mark.parametrize("name", [None, *cli.COMMANDS])
def test_help_on_the_top_level_and_every_command(name: str | None) -> None:
    for flag in ("-h", "--help"):
        r = invoke(flag) if name is None else invoke(name, flag)
        assert r.exit_code == 0, r.output
        assert r.stdout.startswith(f"Usage: elfcost {name or ''}".rstrip() + " [OPTIONS]")
        assert "-h, --help" in r.stdout and "\b" not in r.stdout
        assert r.stdout.rstrip().endswith("started has ended)")  # the exit codes, as written
    if name is not None:  # help wins over a bad value elsewhere on the line
        bad = ["--page-size", "3K"] if name == "explain" else ["--format", "xml"]
        r = invoke(name, *bad, "--help")
        assert r.exit_code == 0 and r.stdout.startswith(f"Usage: elfcost {name} [OPTIONS]")


def test_top_level_help_lists_every_command() -> None:
    out = invoke("--help").stdout
    for name in cli.COMMANDS:
        assert f"\n  {name:<10}" in out, name


def test_no_arguments_is_help_on_stderr_and_2() -> None:
    r = invoke()
    assert r.exit_code == 2 and r.stdout == "" and "Commands:" in r.stderr


def test_one_bad_input_is_one_line_and_the_others_go_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from elfcost.cli.common import State

    state = State()
    with state.per_input():
        raise ElfcostError("/x", "", "no such file")
    with state.per_input():
        raise ValueError("a bug")
    with state.per_input():
        pass
    assert state.status == Exit.INPUT_ERROR
    assert capsys.readouterr().err.splitlines() == [
        "elfcost: error: /x: no such file",
        "elfcost: internal error: ValueError: a bug (run with --traceback and report it)",
    ]
    for exc in (click.UsageError("u"), BrokenPipeError(), KeyboardInterrupt()):
        with pytest.raises(type(exc)), state.per_input():
            raise exc
    loud = State(traceback=True)
    with pytest.raises(ElfcostError), loud.per_input():
        raise ElfcostError("/x", "", "no such file")
    assert loud.status == Exit.OK


def the_script() -> list[str]:
    """The `elfcost` script as pip writes it: the entry point pyproject.toml declares, called
    with the script's own path as argv[0]."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    module, func = pyproject["project"]["scripts"]["elfcost"].split(":")
    code = f"import sys; from {module} import {func}; sys.argv[0] = '/opt/bin/elfcost'; {func}()"
    return [sys.executable, "-c", code]


def both(*argv: str, **env: str) -> str:
    """What `elfcost ARGV` writes, exit status and all, the same as `python -m elfcost ARGV`."""
    runs = [
        subprocess.run(
            [*command, *argv],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=60,
        )
        for command in (the_script(), [sys.executable, "-m", "elfcost"])
    ]
    script, module = ((r.returncode, r.stdout, r.stderr) for r in runs)
    assert script == module
    return f"{script[0]}\n{script[1]}{script[2]}"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts(shell: str) -> None:
    out = both(_ELFCOST_COMPLETE=f"{shell}_source")
    assert out.startswith("0\n") and "_ELFCOST_COMPLETE" in out
    assert "_elfcost_completion" in out  # for the command named elfcost, however it was run


def test_the_script_and_python_m_elfcost_are_one_program() -> None:
    assert both("--help").startswith("0\nUsage: elfcost [OPTIONS] COMMAND [ARGS]...")
    assert both("--version") == f"0\nelfcost, version {version('elfcost')}\n"
    usage = both("estimat", "x").splitlines()
    assert usage[:2] == ["2", "Usage: elfcost [OPTIONS] COMMAND [ARGS]..."]
    assert both("check").splitlines()[1] == "Usage: elfcost check [OPTIONS] PATHS..."


def test_completion_of_commands_and_options() -> None:
    def complete(words: str) -> list[str]:
        cword = str(len(words.split()) - 1)
        out = both(_ELFCOST_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=cword)
        return out.splitlines()[1:]

    assert complete("elfcost est") == ["plain,estimate"]
    assert "plain,--format" in complete("elfcost estimate --for")
    assert complete("elfcost measure --at e") == ["plain,entry", "plain,exec"]
    assert complete("elfcost check --root /us") == ["dir,/us"]


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["check", "--max-private-dirty", "1K", "/bin/true"], Exit.CHECK_FAILED),
        (["explain", "/bin/true", "--object", "no-such-object"], Exit.CHECK_FAILED),
        (["estimate", "/nonexistent", "/bin/true"], Exit.INPUT_ERROR),
        (["/bin/true"], Exit.OK),
    ],
)
def test_a_closed_pipe_keeps_the_exit_status(argv: list[str], status: Exit) -> None:
    """`elfcost check ... | head` under `set -o pipefail` must still fail an over-budget gate."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before elfcost writes a byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "elfcost", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
