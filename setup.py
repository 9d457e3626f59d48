"""Kept minimal so `python setup.py sdist` can ship the code to Flink/Beam Python workers."""

from setuptools import setup

setup()
