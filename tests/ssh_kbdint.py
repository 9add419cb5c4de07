#!/usr/bin/python3
"""A keyboard-interactive SSH login, answered from a script: what a user at an ssh prompt does.

Usage: ssh_kbdint.py HOST PORT USER ANSWER...
Prints one JSON object: {"authenticated": bool, "prompts": [...], "error": str|null}.
Used by tests/tests/ssh.rs; needs Debian's python3-paramiko (make test installs it).
"""
import json
import socket
import sys

import paramiko


def main() -> int:
    host, port, user, *answers = sys.argv[1:]
    prompts = []
    queue = list(answers)

    def handler(_title, _instructions, fields):
        replies = []
        for prompt, _echo in fields:
            prompts.append(prompt)
            replies.append(queue.pop(0) if queue else "")
        return replies

    sock = socket.create_connection((host, int(port)), timeout=20)
    transport = paramiko.Transport(sock)
    error = None
    try:
        transport.start_client(timeout=20)
        transport.auth_interactive(user, handler)
    except paramiko.SSHException as e:
        error = str(e)
    result = {
        "authenticated": transport.is_authenticated(),
        "prompts": prompts,
        "error": error,
    }
    transport.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
