"""The command line's parsing, in process: the default command, what reaches each command,
usage errors (exit 2, one line naming what was wrong), help and --version."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from elfcost import cli
from elfcost.errors import ElfcostError, Exit


def parse(name: str, *argv: str) -> dict[str, Any]:
    return cli.parse_command(cli.build_parser(name), cli.COMMANDS[name], argv)


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run elfcost with argv, expect exit 2, and return its one error line."""
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv), prog_name="elfcost")
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("usage: elfcost"), err
    return lines[1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/bin/true"], ["estimate", "/bin/true"]),
        (["--format", "json", "B"], ["estimate", "--format", "json", "B"]),
        (["--traceback", "B"], ["--traceback", "estimate", "B"]),
        (
            ["--traceback", "--format", "json", "B"],
            ["--traceback", "estimate", "--format", "json", "B"],
        ),
        (["--", "B"], ["estimate", "--", "B"]),
        (["help"], ["estimate", "help"]),  # not a command: a file called help
        (["B", "--help"], ["estimate", "B", "--help"]),  # estimate's own help
        (["-n", "3", "B"], ["estimate", "-n", "3", "B"]),
        # A command name, or elfcost's own help or version: nothing inserted.
        (["deps", "B"], ["deps", "B"]),
        (["--traceback", "scan", "D"], ["--traceback", "scan", "D"]),
        (["--help", "B"], ["--help", "B"]),
        (["-h", "B"], ["-h", "B"]),
        (["--version", "B"], ["--version", "B"]),
        (["--traceback", "--version", "B"], ["--traceback", "--version", "B"]),
        (["--traceback"], ["--traceback"]),
        ([], []),
    ],
)
def test_default_command_goes_after_elfcost_s_own_options(
    argv: list[str], expected: list[str]
) -> None:
    assert cli.with_default_command(argv) == expected


def test_every_command_gets_exactly_its_parameters() -> None:
    """What the parser produces is what each command function takes, by name."""
    minimal = {
        "estimate": ["B"],
        "explain": ["B"],
        "deps": ["B"],
        "measure": [],
        "validate": ["B"],
        "check": ["B"],
        "scan": [],
        "diff": ["A", "B"],
    }
    assert set(minimal) == set(cli.COMMANDS)
    for name, argv in minimal.items():
        code = cli.COMMANDS[name].func.__code__
        params = set(code.co_varnames[: code.co_argcount]) - {"state"}
        assert set(parse(name, *argv)) == params, name


def test_options_and_words_mix_and_dash_dash_ends_the_options() -> None:
    v = parse("estimate", "A", "--format", "json", "B", "-n", "3", "--", "--odd-name")
    assert v["binaries"] == ["A", "B", "--odd-name"]
    assert v["fmt"] == "json" and v["instances"] == 3
    assert parse("measure", "--", "prog", "--its-option", "-x")["command"] == [
        "prog",
        "--its-option",
        "-x",
    ]
    m = parse("measure", "--at", "entry", "--", "/bin/sleep", "100")
    assert m["command"] == ["/bin/sleep", "100"] and m["at"] == "entry"
    assert parse("measure", "/bin/sleep", "100")["command"] == ["/bin/sleep", "100"]
    v = parse("validate", "--format", "json", "/usr/bin/curl", "--", "-K", "-")
    assert (v["binary"], v["args"], v["fmt"]) == ("/usr/bin/curl", ["-K", "-"], "json")
    v = parse("validate", "/bin/sleep", "--format", "json", "--", "100")
    assert (v["binary"], v["args"], v["fmt"]) == ("/bin/sleep", ["100"], "json")
    v = parse("validate", "--", "./daemon", "--foreground")
    assert (v["binary"], v["args"]) == ("./daemon", ["--foreground"])
    assert parse("validate", "B")["args"] == []
    assert parse("diff", "old", "new", "-n", "129")["instances"] == 129


def test_defaults_repeatable_options_and_flags_the_policy_decides() -> None:
    v = parse("check", "B")
    assert v["strict"] is None and v["no_textrel"] is None  # the policy file decides
    assert v["instances"] is None and v["max_private_dirty"] is None
    assert v["root"] == "/" and v["fmt"] == "text" and v["update_baseline"] is False
    v = parse("check", "--strict", "--no-textrel", "--max-fleet", "1.5MiB", "B")
    assert v["strict"] is True and v["no_textrel"] is True and v["max_fleet"] == 1572864
    m = parse("measure", "--pid", "1", "--pid", "2", "--env", "A=1", "--env", "B=x=y")
    assert m["pids"] == [1, 2] and m["env_items"] == ["A=1", "B=x=y"]
    assert parse("measure")["pids"] == [] and parse("measure")["env_items"] == []
    m = parse("measure")
    assert (m["at"], m["settle"], m["timeout"], m["delay"]) == ("idle", 0.3, 10.0, None)
    e = parse("estimate", "--page-size", "16K", "--assume", "musl", "B")
    assert (e["page_size"], e["assume"], e["instances"]) == (16384, "musl", 1)
    assert parse("deps", "B")["strict"] is False
    s = parse("scan")
    assert (s["paths"], s["top"], s["jobs"], s["no_cache"]) == ([], 10, None, False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--page-size", "3K", "B"], "argument --page-size: page size must be 4K, 16K or 64K"),
        (["--page-size", "x", "B"], "argument --page-size: 'x' is not a size"),
        (["-n", "0", "B"], "argument -n/--instances: 0 is not in the range x>=1."),
        (["--format", "xml", "B"], "argument --format: invalid choice: 'xml'"),
        (["--bogus", "B"], "unrecognized arguments: --bogus"),
        (["--form", "json", "B"], "unrecognized arguments: --form"),  # no abbreviations
        (["estimate"], "the following arguments are required: BINARIES"),
        (["explain", "A", "B"], "unrecognized arguments: B"),
        (["diff", "A"], "the following arguments are required: NEW"),
        (["check", "--max-private-dirty", "lots", "B"], "argument --max-private-dirty: 'lots'"),
        (["measure", "/bin/sh", "-c", "x"], "unrecognized arguments: -c"),
        (["measure", "--env", "FOO", "--", "/bin/true"], "argument --env: 'FOO' is not NAME="),
        (["measure", "--timeout", "x"], "argument --timeout: 'x' is not a valid float."),
        (["measure"], "give exactly one of: -- COMMAND, --pid, --smaps, --capture"),
        (["--traceback"], "elfcost: error: the following arguments are required: COMMAND"),
    ],
)
def test_usage_error_is_2_and_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    line = usage_error(capsys, *argv)
    assert ": error: " in line and message in line, line


def test_root_must_be_an_existing_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing"
    line = usage_error(capsys, "--root", str(missing), "/bin/true")
    assert line.endswith(f"argument --root: Directory '{missing}' does not exist.")
    a_file = tmp_path / "file"
    a_file.write_text("")
    line = usage_error(capsys, "deps", "--root", str(a_file), "/bin/true")
    assert line.endswith(f"argument --root: Directory '{a_file}' is a file.")
    line = usage_error(capsys, "diff", "--new-root", str(missing), "a", "b")
    assert "argument --new-root: Directory" in line
    line = usage_error(capsys, "check", "--budget", str(tmp_path), "/bin/true")
    assert line.endswith(f"argument --budget: File '{tmp_path}' is a directory.")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--version"], ["--traceback", "--version"], ["--version", "/bin/true"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv, prog_name="elfcost")
        assert exc.value.code == 0
        assert capsys.readouterr().out == f"elfcost, version {version('elfcost')}\n"


def test_version_and_usage_name_the_program_as_it_was_run() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", "--version"], capture_output=True, text=True
    )
    assert (r.returncode, r.stdout) == (0, f"python -m elfcost, version {version('elfcost')}\n")
    script = Path(sys.executable).with_name("elfcost")
    if script.exists():
        r = subprocess.run([script, "estimate"], capture_output=True, text=True)
        assert r.returncode == 2
        assert r.stderr.startswith("usage: elfcost estimate [OPTIONS] BINARIES...\n")


@pytest.mark.parametrize("name", [None, *cli.COMMANDS])
def test_help_on_the_top_level_and_every_command(
    capsys: pytest.CaptureFixture[str], name: str | None
) -> None:
    for flag in ("-h", "--help"):
        argv = [flag] if name is None else [name, flag]
        with pytest.raises(SystemExit) as exc:
            cli.main(argv, prog_name="elfcost")
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: elfcost {name or ''}".rstrip() + " [OPTIONS]")
        assert "-h, --help   " in out and "\b" not in out
        assert out.rstrip().endswith("3 wins over 1")  # the exit codes, as written
    if name is not None:  # help wins over everything else on the line, as it did
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--page-size", "3K", "--help"], prog_name="elfcost")
        assert exc.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: elfcost {name} [OPTIONS]")


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"], prog_name="elfcost")
    out = capsys.readouterr().out
    for name, command in cli.COMMANDS.items():
        assert f"\n  {name:<10}{command.summary.split()[0]}" in out, name


def test_no_arguments_is_help_on_stderr_and_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([], prog_name="elfcost")
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: elfcost [OPTIONS] COMMAND") and "commands:" in err


def test_main_reads_sys_argv(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["elfcost", "estimate", "--help"])
    with pytest.raises(SystemExit) as exc:
        cli.main(prog_name="elfcost")
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("usage: elfcost estimate")


def test_one_bad_input_is_one_line_and_the_others_go_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = cli.State()
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
    for exc in (cli.UsageError("u"), BrokenPipeError(), KeyboardInterrupt()):
        with pytest.raises(type(exc)), state.per_input():
            raise exc
    loud = cli.State(traceback=True)
    with pytest.raises(ElfcostError), loud.per_input():
        raise ElfcostError("/x", "", "no such file")
    assert loud.status == Exit.OK


def test_the_command_line_does_not_import_click() -> None:
    code = "import sys, elfcost.cli; print('click' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout == "False\n"


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
    script = Path(sys.executable).with_name("elfcost")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before elfcost writes a byte
    try:
        done = subprocess.run(
            [str(script), *argv], stdout=write_end, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write_end)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_an_option_value_may_start_with_a_dash() -> None:
    """As click took it: `--follow -bash` (a login shell's name), `-o -report.txt`."""
    assert parse("measure", "--follow", "-bash", "--", "/bin/true")["follow"] == "-bash"
    assert parse("estimate", "--ld-library-path", "-L", "B")["ld_library_path"] == "-L"
    assert parse("estimate", "-o", "-x.txt", "B")["output"] == "-x.txt"
    assert parse("estimate", "--format=json", "B")["fmt"] == "json"
