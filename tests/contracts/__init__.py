"""Behaviour every adapter of a port must show: each class is run by one test module per adapter (a `Test...`
subclass next to the fixture that builds that adapter), in the layer that adapter belongs to."""
