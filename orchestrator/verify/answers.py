"""Judging what a server answered to verify's requests: HTTP/1.1 answers parsed from the
bytes one connection received, and what is wrong with them, in words a report can show."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from orchestrator.results.verification import VerifyStep

# servers/README.md: the reference servers' answer, byte for byte.
REFERENCE_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-type: text/html\r\nContent-length: 17\r\n\r\nHave a nice day!\n"
)
EXCERPT_CHARS = 240
_STATUS = re.compile(r"HTTP/1\.1 (\d{3})(?: .*)?")
_HEADER = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*")
KEEP_ALIVE = "the load tools keep connections alive"
_ESCAPES = {13: "\\r", 10: "\\n", 9: "\\t", 92: "\\\\"}


@dataclass(frozen=True)
class Answer:
    """One complete HTTP answer."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body_length: int

    def header(self, name: str) -> str | None:
        """A header's value (the first of that name, any case), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class Parsed:
    """The answers in a byte stream, what is left after them, and the first malformation."""

    answers: list[Answer]
    rest: bytes
    problem: str | None


def parse_answers(data: bytes) -> Parsed:
    """Split `data` into HTTP/1.1 answers framed by Content-Length."""
    answers: list[Answer] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        number = len(answers) + 1
        lines = data[pos:end].decode("latin-1").split("\r\n")
        status = _STATUS.fullmatch(lines[0])
        if status is None:
            problem = f"answer {number}: {lines[0]!r} is no HTTP/1.1 status line"
            return Parsed(answers, data[pos:], problem)
        headers = []
        for line in lines[1:]:
            match = _HEADER.fullmatch(line)
            if match is None:
                return Parsed(answers, data[pos:], f"answer {number}: bad header line {line!r}")
            headers.append((match[1], match[2]))
        answer = Answer(int(status[1]), tuple(headers), 0)
        if answer.header("Transfer-Encoding") is not None:
            return Parsed(answers, data[pos:], f"answer {number}: chunked, not Content-Length")
        length = answer.header("Content-Length")
        if length is None or not length.isdigit():
            return Parsed(answers, data[pos:], f"answer {number}: no Content-Length")
        body_end = end + 4 + int(length)
        if body_end > len(data):
            break
        answers.append(Answer(answer.status, answer.headers, int(length)))
        pos = body_end
    return Parsed(answers, data[pos:], None)


def excerpt(data: bytes, limit: int = EXCERPT_CHARS) -> str:
    """The start of `data` readable on one line: `\\r\\n` and other bytes escaped."""
    text = "".join(
        _ESCAPES.get(b, chr(b) if 32 <= b < 127 else f"\\x{b:02x}") for b in data[: limit * 2]
    )
    if len(text) > limit:
        return f"{text[:limit]}… ({len(data)} bytes in all)"
    return text


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _exact_problem(data: bytes, requests: int) -> str | None:
    expected = REFERENCE_RESPONSE * requests
    if data == expected:
        return None
    size = len(REFERENCE_RESPONSE)
    whole = 0
    while data[whole * size : (whole + 1) * size] == REFERENCE_RESPONSE:
        whole += 1
    if data.startswith(expected):
        return f"{_count(whole, 'answer')} to {_count(requests, 'request')}"
    if expected.startswith(data):
        partial = " and part of one" if len(data) % size else ""
        return f"{_count(whole, 'answer')}{partial} to {_count(requests, 'request')}"
    at = next(i for i in range(min(len(data), len(expected))) if data[i] != expected[i])
    return (
        f"answer {whole + 1} differs from the reference response's {size} bytes at byte "
        f"{at - whole * size + 1}"
    )


def _http_problem(data: bytes, requests: int) -> str | None:
    parsed = parse_answers(data)
    answers = parsed.answers
    if parsed.problem:
        return parsed.problem
    if len(answers) != requests:
        return f"{_count(len(answers), 'answer')} to {_count(requests, 'request')}"
    if parsed.rest:
        return f"{len(parsed.rest)} bytes after the last answer"
    for number, answer in enumerate(answers, start=1):
        if answer.status != 200:
            return f"answer {number}: status {answer.status}, not 200"
        if answer.body_length == 0:
            return f"answer {number}: an empty body"
        if (answer.header("Connection") or "").lower() == "close":
            return f"answer {number}: Connection: close ({KEEP_ALIVE})"
    return None


def judge(
    name: str,
    requests: int,
    data: bytes,
    closed: bool,
    error: str | None,
    response: Literal["exact", "http"],
) -> VerifyStep:
    """One step's verdict: `data` came back on a connection that sent `requests`."""
    problem = error
    if problem is None:
        check = _exact_problem if response == "exact" else _http_problem
        problem = check(data, requests)
    if problem is None and closed:
        problem = f"the server closed the connection ({KEEP_ALIVE})"
    if problem is None and not data:
        problem = "no answer"
    return VerifyStep(
        name=name,
        requests=requests,
        answers=len(parse_answers(data).answers),
        received_bytes=len(data),
        problem=problem,
        excerpt=excerpt(data) if problem else "",
    )
