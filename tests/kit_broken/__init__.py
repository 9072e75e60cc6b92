"""Deliberately broken transports that the conformance kit must fail."""
