#!/usr/bin/env python3
"""Writes openai-auditd(8) in roff to stdout, generated from the binary's own help.

Usage: make-manpage.py BINARY

The NAME, SYNOPSIS, DESCRIPTION, COMMANDS and EXIT STATUS sections come from
`BINARY --experimental-dump-help` (swift-argument-parser's description of every command,
option and help text), so the page cannot drift from `--help`. FILES, ENVIRONMENT and
SEE ALSO are facts of the package, kept here.
"""
import datetime
import json
import os
import subprocess
import sys


def roff(text):
    """Escapes text for roff: backslashes, and a leading dot or quote on a line."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def option_name(argument):
    names = argument.get("names") or []
    if not names:
        return "<%s>" % argument.get("valueName", "value")
    prefix = {"long": "--", "short": "-", "longWithSingleDash": "-"}
    spelled = ", ".join(prefix[n["kind"]] + n["name"] for n in names)
    if argument.get("kind") == "option":
        spelled += " <%s>" % argument.get("valueName", "value")
    return spelled


def visible_arguments(command):
    return [
        a
        for a in command.get("arguments", [])
        if a.get("shouldDisplay", True) and option_name(a) not in ("--version", "-h, --help")
    ]


def command_section(command, path, out):
    name = " ".join(path)
    usage = " ".join(
        ("[%s]" % option_name(a)) if a.get("isOptional", True) else option_name(a)
        for a in visible_arguments(command)
    )
    out.append(".SS %s" % roff(name))
    if command.get("abstract"):
        out.append(roff(command["abstract"]))
    out.append(".PP\n.B openai\\-auditd %s\n%s" % (roff(" ".join(path[1:])), roff(usage)))
    if command.get("discussion"):
        out.append(".PP\n" + roff(" ".join(command["discussion"].split())))
    for argument in visible_arguments(command):
        out.append(".TP\n.B %s\n%s" % (roff(option_name(argument)), roff(argument.get("abstract") or "")))
        values = argument.get("allValues")
        if values:
            out.append("Values: %s." % roff(", ".join(values)))


def main():
    binary = sys.argv[1]
    dump = json.loads(subprocess.run([binary, "--experimental-dump-help"], check=True,
                                     capture_output=True, text=True).stdout)
    version = subprocess.run([binary, "--version"], check=True, capture_output=True, text=True).stdout.strip()
    top = dump["command"]
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    date = (datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%d")

    discussion = top.get("discussion", "")
    head, _, codes = discussion.partition("Exit codes:")
    out = ['.TH OPENAI\\-AUDITD 8 "%s" "openai-auditd %s" "System Administration"' % (date, version)]
    out.append(".SH NAME\nopenai\\-auditd \\- %s" % roff(top["abstract"][0].lower() + top["abstract"][1:].rstrip(".")))
    out.append(".SH SYNOPSIS\n.B openai\\-auditd\n[\\fIcommand\\fR] [\\fB\\-\\-config\\fR \\fIFILE\\fR] "
               "[\\fB\\-\\-log\\-level\\fR \\fILEVEL\\fR]")
    out.append(".SH DESCRIPTION\n%s" % roff(top["abstract"]))
    if head.strip():
        out.append(".PP\n" + roff(" ".join(head.split())))
    out.append(".PP\nThe commands below share \\fB\\-\\-config\\fR and \\fB\\-\\-log\\-level\\fR; "
               "\\fBrun\\fR is the default. Every command also takes \\fB\\-\\-help\\fR and \\fB\\-\\-version\\fR.")
    out.append(".SH COMMANDS")

    def walk(command, path):
        for sub in command.get("subcommands", []):
            if sub["commandName"] == "help" or not sub.get("shouldDisplay", True):
                continue
            if sub.get("subcommands"):
                walk(sub, path + [sub["commandName"]])
            else:
                command_section(sub, path + [sub["commandName"]], out)

    walk(top, ["openai-auditd"])
    out.append(".SH EXIT STATUS")
    for line in codes.strip().splitlines():
        code, _, meaning = line.strip().partition(" ")
        out.append(".TP\n.B %s\n%s" % (code, roff(meaning.strip())))
    out.append(""".SH FILES
.TP
.I /etc/openai\\-auditd/config.yaml
The configuration; every key is described in it. The template unit reads
.IR /etc/openai\\-auditd/NAME.yaml .
.TP
.I /etc/openai\\-auditd/admin\\-key
The admin key, readable by root only; systemd hands it to the daemon as the credential
.BR openai\\-admin\\-key .
.TP
.I /var/lib/openai\\-auditd/state.json
Where the daemon stands (under systemd:
.IR $STATE_DIRECTORY/state.json ).
Show it with
.BR "openai\\-auditd state show" .
.SH ENVIRONMENT
.TP
.B OPENAI_AUDITD_CONFIG
The configuration file when \\fB\\-\\-config\\fR is not given.
.TP
.B OPENAI_AUDITD_<KEY>
Overrides one configuration key, e.g.
.B OPENAI_AUDITD_POLL_INTERVAL=30s
or
.BR OPENAI_AUDITD_API_BASE_URL .
.TP
.B OPENAI_ADMIN_KEY
The admin key, when neither \\fBapi.admin_key_file\\fR nor a systemd credential gives one.
.TP
.BR CREDENTIALS_DIRECTORY ", " STATE_DIRECTORY ", " NOTIFY_SOCKET ", " WATCHDOG_USEC
Set by systemd; see
.BR systemd.exec (5).
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
.BR systemd.exec (5),
.BR systemd-creds (1),
.I /usr/share/doc/openai\\-auditd/operations.md""")
    print("\n".join(out))


if __name__ == "__main__":
    main()
