#!/usr/bin/env python3
"""N simulated dashboards against ptbuildd's web port, doing what app.js does: one /events/watch
stream, one /events/log?follow stream of a running job (read to the end, as a browser does), and
/api/status + /api/matrix + /api/show every 2 s. Runs until the process WAITER exits; prints the
/api/status latencies (microseconds, one a line) and a summary line on stderr.
usage: dashboard_load.py PORT N WAITER_PID"""
import http.client, os, socket, sys, threading, time

port, n, waiter = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
latencies, event_bytes, calls = [], [0], [0]

def alive():
    try:
        os.kill(waiter, 0)
        return True
    except ProcessLookupError:
        return False

def stream(target):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    s.settimeout(1.0)
    while alive():
        try:
            data = s.recv(1 << 16)
        except socket.timeout:
            continue
        if not data:
            break
        with lock:
            event_bytes[0] += len(data)
    s.close()

def poll(job):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while alive():
        for target in ("/api/status", "/api/matrix", f"/api/show?job={job}"):
            a = time.perf_counter_ns()
            conn.request("GET", target)
            conn.getresponse().read()
            if target == "/api/status":
                with lock:
                    latencies.append((time.perf_counter_ns() - a) // 1000)
            with lock:
                calls[0] += 1
        time.sleep(2)

threads = []
for i in range(n):
    job = i + 1
    threads += [threading.Thread(target=stream, args=("/events/watch",)),
                threading.Thread(target=stream, args=(f"/events/log?job={job}&tail=200&follow=true",)),
                threading.Thread(target=poll, args=(job,))]
for t in threads:
    t.daemon = True
    t.start()
for t in threads:
    t.join()
for l in latencies:
    print(l)
print(f"{n} dashboards: {calls[0]} API calls, {event_bytes[0] / 1e6:.0f} MB of events read", file=sys.stderr)
