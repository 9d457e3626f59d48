"""The lifecycle of a model version: registered -> evaluated -> canary -> active -> retired.

Registration checks an artifact before any row exists; an evaluation over the model's labelled set stores a
verdict against per-model gate rules; canary, promote (gated, optionally warm) and rollback move the registry and
the route together, each step an audit row; the serving back end loads and unloads versions live.
"""
