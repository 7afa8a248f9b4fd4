"""The ``ovserver`` command line: bad input gets one clear line and status 2
before any work; --help shows every default; --version; Ctrl+C in simulate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fakewinsock import sockaddr_in
from ovserver import ServerConfig
from ovserver import __main__ as cli
from ovserver.__main__ import main, resolve_host

BAD = [
    ["serve", "--port", "99999"],
    ["serve", "--port", "-1"],
    ["serve", "--port", "http"],
    ["serve", "--max-clients", "0"],
    ["serve", "--max-queued", "-5"],
    ["serve", "--max-line", "1e3"],
    ["serve", "--model", "threads"],
    ["serve", "--idle-timeout-ms", "-1"],
    ["serve", "--idle-timeout-ms", "2147483648"],
    ["serve", "--high-water", "-1"],
    ["serve", "--high-water", "1048576"],  # not under --max-queued's default
    ["serve", "--max-queued", "1000", "--high-water", "2000"],
    ["serve", "--stall-timeout-ms", "0"],
    ["simulate", "--high-water", "-1"],  # simulate takes serve's back-pressure options, checked alike
    ["simulate", "--max-queued", "1000", "--high-water", "2000"],
    ["simulate", "--stall-timeout-ms", "0"],
    ["serve", "--accepts", "0"],
    ["serve", "--accepts", "1025"],
    ["simulate", "--accepts", "0"],  # simulate takes serve's --accepts, checked alike
    ["simulate", "--accepts", "1025"],
    ["simulate", "--clients", "-1"],
    ["simulate", "--messages", "-1"],
    ["simulate", "--seed", "-1"],
    ["simulate", "--arrival", "-1"],
    ["simulate", "--arrival", "nan"],
    ["simulate", "--resets", "1.5"],
    ["simulate", "--resets", "inf"],
    ["simulate", "--max-line", "0"],
    ["serve", "--hots", "x"],
    ["simulate", "--port", "5"],  # serve's only (simulate takes --idle-timeout-ms since search18)
    ["simulate", "--idle-timeout-ms", "-1"],
    ["simulate", "--clients", "1", "extra"],
    ["--clients", "1", "simulate"],
    [],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) or "nothing" for a in BAD])
def test_bad_input_is_one_line_and_status_2(argv: list[str], capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "simulate", lambda *a, **k: pytest.fail("ran despite bad input"))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and "error" in err, err


def test_serve_config_takes_back_pressure_only_with_high_water() -> None:
    on = cli.serve_config(cli._parse(["serve", "--high-water", "65536", "--stall-timeout-ms", "700"]), "127.0.0.1")
    assert on.limits.high_water == 65536 and on.stall_timeout_ms == 700
    off = cli.serve_config(cli._parse(["serve", "--high-water", "0", "--stall-timeout-ms", "700"]), "127.0.0.1")
    assert off.limits.high_water == 0 and off.stall_timeout_ms == 0


@pytest.mark.parametrize(("argv", "high_water", "stall_ms"), [
    (["serve"], 65536, 10_000),  # echo: on by default
    (["serve", "--mode", "echo", "--stall-timeout-ms", "700"], 65536, 700),
    (["serve", "--max-queued", "100000"], 50_000, 10_000),  # half of --max-queued when that is less
    (["serve", "--max-line", "100", "--max-queued", "101"], 50, 10_000),  # half of --max-queued (tiny)
    (["serve", "--mode", "chat"], 0, 0),  # chat: off by default (a deaf member would pause every sender)
    (["serve", "--mode", "chat", "--high-water", "4096"], 4096, 10_000),
    (["serve", "--high-water", "0"], 0, 0),  # the off switch
])
def test_serve_back_pressure_is_on_by_default_in_echo_only(argv: list[str], high_water: int, stall_ms: int) -> None:
    """serve's default: back-pressure in echo mode (a client that stops
    reading holds back only itself), not in chat (it would pause every
    sender); --high-water 0 turns it off.  Proven by making the default 0
    (the echo rows fail) and by applying it in chat too (the chat row fails)."""
    config = cli.serve_config(cli._parse(argv), "127.0.0.1")
    assert (config.limits.high_water, config.stall_timeout_ms) == (high_water, stall_ms)


@pytest.mark.parametrize(("argv", "high_water", "stall_ms"), [
    (["--plain"], 0, 0),  # plain traffic: off unless given (the run it was)
    (["--plain", "--high-water", "50000", "--max-queued", "100000", "--stall-timeout-ms", "700"], 50_000, 700),
    (["--plain", "--mode", "chat", "--high-water", "4096"], 4096, 10_000),  # serve's stall time-out
    (["--high-water", "0"], 0, 0),  # the off switch (seed 1 draws back_pressure)
    ([], 65536, 10_000),  # the swarm's back_pressure: serve's echo default
    (["--mode", "chat"], 16384, 10_000),  # chat: a mark drawn
    (["--stall-timeout-ms", "700"], 65536, 700),
])
def test_simulate_runs_the_server_with_serves_back_pressure(argv: list[str], high_water: int, stall_ms: int,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """simulate takes serve's back-pressure options, runs the server with
    them and says so in its report; not given, the swarm draws them.  Proven
    by dropping the options from the simulate call in _simulate (rows 2, 3,
    4 and 7 fail)."""
    assert main(["simulate", "--clients", "3", "--messages", "1", "--seed", "1", *argv]) == 0
    limits = capsys.readouterr().out.splitlines()[2]
    if high_water:
        assert limits.endswith(f", back-pressure at {high_water} (stall time-out {stall_ms} ms)"), limits
    else:
        assert "back-pressure" not in limits, limits


def test_serve_keeps_16_accepts_outstanding_by_default() -> None:
    assert cli.serve_config(cli._parse(["serve"]), "127.0.0.1").accepts == 16
    assert cli.serve_config(cli._parse(["serve", "--accepts", "1"]), "127.0.0.1").accepts == 1
    with pytest.raises(ValueError, match="accepts must be 1-1024"):
        ServerConfig(accepts=0)


def test_port_99999_names_the_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--port", "99999"])
    assert "--port: must be 0-65535, not 99999" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "expected"), [
    (["simulate", "--port", "5"],
     "ovserver simulate: error: unrecognized arguments: --port 5 (see ovserver simulate --help)"),
    (["serve", "--port", "1", "--trace", "x"],
     "ovserver serve: error: unrecognized arguments: --trace x (see ovserver serve --help)"),
    (["simulate", "simulate"],
     "ovserver simulate: error: unrecognized arguments: simulate (see ovserver simulate --help)"),
    (["--clients=1", "simulate"], "ovserver: error: unrecognized arguments: --clients=1 (see ovserver --help)"),
])
def test_an_unknown_option_is_blamed_on_the_parser_that_lacks_it(argv: list[str], expected: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # The subcommand's --help lists its options; ovserver --help does not.
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err == expected + "\n"


def test_host_names_are_resolved_or_refused_with_the_reason() -> None:
    assert resolve_host("127.0.0.1") == "127.0.0.1"
    assert resolve_host("localhost").startswith("127.")
    with pytest.raises(ValueError, match="IPv6"):
        resolve_host("::1")
    with pytest.raises(ValueError, match="cannot resolve '999.1.1.1'"):
        resolve_host("999.1.1.1")
    with pytest.raises(ValueError, match="not a host name"):
        resolve_host("")


@pytest.mark.parametrize("host", ["localhost", "::1", "999.1.1.1", ""])
def test_sockaddr_in_refuses_what_is_not_an_ipv4_address(host: str) -> None:
    # The root cause of "--host localhost binds 255.255.255.255": inet_addr's
    # INADDR_NONE taken as an address.
    with pytest.raises(ValueError, match="dotted IPv4"):
        sockaddr_in(host, 80)
    with pytest.raises(ValueError, match="IPv4"):
        ServerConfig(host=host)


def test_the_broadcast_address_is_still_an_address() -> None:
    assert sockaddr_in("255.255.255.255", 80).host == "255.255.255.255"


@pytest.mark.parametrize("command", ["serve", "simulate"])
def test_help_shows_every_default(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    options = re.findall(r"^  (--[a-z-]+)", text, re.M)
    assert "--max-clients" in options and "--mode" in options
    blocks = re.split(r"\n  (?=--)", text.split("options:", 1)[1])
    for block in blocks:
        name = block.split()[0]
        if name in ("-h,", "--barrier", "--progress"):  # flags: no value, no default
            continue
        assert "(default:" in " ".join(block.split()), f"{name} shows no default"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert re.fullmatch(r"ovserver \d+\.\d+\.\d+ .*\n", capsys.readouterr().out)


def test_unwritable_trace_fails_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "simulate", lambda *a, **k: pytest.fail("ran with an unwritable trace"))
    assert main(["simulate", "--clients", "1", "--trace", str(tmp_path / "no" / "such" / "dir.json")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--trace" in err


def test_ctrl_c_during_simulate_is_one_line_and_130(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "simulate", interrupted)
    assert main(["simulate", "--clients", "1"]) == 130
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == "ovserver simulate: interrupted (Ctrl+C); no report"


def test_ctrl_c_before_the_console_handler_is_one_line_and_130(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "_serve", interrupted)
    assert main(["serve"]) == 130
    assert capsys.readouterr().err.strip() == "ovserver serve: interrupted (Ctrl+C)"


@pytest.mark.parametrize("argv", [["--clients", "0"], ["--clients", "2", "--messages", "0", "--plain"]])
def test_a_run_without_messages_reports_no_calls_per_message(argv: list[str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *argv]) == 0
    [calls] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("winsock calls")]
    assert re.fullmatch(r"winsock calls +\d+ \(no messages\)", calls), calls
