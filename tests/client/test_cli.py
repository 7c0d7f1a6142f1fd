"""`python -m rolloutops_client`: a token check that says what is wrong, and routing as a runtime sees it."""
import json
import subprocess
import sys

import pytest
from rolloutops_client import bucket
from rolloutops_client.cli import main

from .conftest import SALT, TOKEN


@pytest.fixture
def env(fake, monkeypatch):
    monkeypatch.setenv("ROLLOUTOPS_URL", fake.url)
    monkeypatch.setenv("ROLLOUTOPS_TOKEN", TOKEN)
    return fake


def test_check_reports_ok_with_what_the_token_sees(env, capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok:") and "2 agent(s)" in out and env.etag() in out


def test_check_names_a_refused_token(env, capsys, monkeypatch):
    monkeypatch.setenv("ROLLOUTOPS_TOKEN", "rlo_revoked")
    assert main(["whoami"]) == 3
    assert "401 Unauthorized" in capsys.readouterr().err
    env.forbidden_tokens.add("rlo_narrow")
    assert main(["--token", "rlo_narrow", "check"]) == 4
    err = capsys.readouterr().err
    assert "403 Forbidden" in err and "route:read" in err


def test_check_says_when_the_server_is_away(env, capsys):
    env.down = True
    assert main(["check"]) == 1
    assert "error:" in capsys.readouterr().err


def test_route_prints_the_answer_a_runtime_would_compute(env, capsys):
    assert main(["route", "claims-triage", "req-42"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["bucket"] == bucket(SALT, "req-42") and answer["rollout"] == 12 and answer["fail_safe"] is False
    assert main(["route", "nobody", "req-42"]) == 5
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reason"] == "unknown_agent" and "fail safe" in captured.err


def test_snapshot_prints_one_agent_or_all(env, capsys):
    assert main(["snapshot", "--agent", "support-router"]) == 0
    assert json.loads(capsys.readouterr().out) == {"support-router": {"incumbent": {"handler": "human",
                                                                                    "version": None},
                                                                      "rollout": None}}
    assert main(["snapshot"]) == 0
    assert set(json.loads(capsys.readouterr().out)["agents"]) == {"claims-triage", "support-router"}


def test_missing_configuration_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv("ROLLOUTOPS_URL", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["check"])
    assert exit_.value.code == 2 and "ROLLOUTOPS_URL" in capsys.readouterr().err


def test_runs_as_a_module(env):
    done = subprocess.run([sys.executable, "-m", "rolloutops_client", "check"], capture_output=True, text=True,
                          timeout=60, env={"ROLLOUTOPS_URL": env.url, "ROLLOUTOPS_TOKEN": TOKEN, "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok:")
