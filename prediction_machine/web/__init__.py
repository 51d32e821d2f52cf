"""The web layer: everything a classroom server needs, and removable.

It validates, calls one library function per route and serializes, and it also holds what a
server for a class must: limits, admission, streaming, security headers, jobs. The library
never imports it; only `serve` starts it.
"""
