#!/usr/bin/env python3
"""Sends N keep-alive GET requests one after another (500 per connection)
and reads each response whole: the load of bench/instructions.sh.

Usage: keepalive_client.py PORT N [wrk|browser]
  wrk      the request wrk sends (a request line and Host)
  browser  a page request with the ten header lines a browser sends
"""
import socket
import sys

WRK = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
BROWSER = (
    b"GET /app/page?x=1 HTTP/1.1\r\n"
    b"Host: 127.0.0.1:%d\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Referer: http://127.0.0.1/app/\r\n"
    b"Cookie: session=abcdef0123456789; theme=dark\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"\r\n"
)


def read_response(sock, buf):
    """Reads one response with a Content-Length body; returns what follows."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            length = 0
            for line in buf[:end].decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if len(buf) >= end + 4 + length:
                return buf[end + 4 + length:]
        data = sock.recv(65536)
        if not data:
            raise SystemExit("connection closed early")
        buf += data


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    kind = sys.argv[3] if len(sys.argv) > 3 else "wrk"
    request = (BROWSER if kind == "browser" else WRK) % port
    done = 0
    while done < count:
        sock = socket.create_connection(("127.0.0.1", port))
        buf = b""
        # under nginx's keepalive_requests (1000)
        for _ in range(min(500, count - done)):
            sock.sendall(request)
            buf = read_response(sock, buf)
            done += 1
        sock.close()


if __name__ == "__main__":
    main()
