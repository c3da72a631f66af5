"""The YAML presets, shipped as package data of ``tracer.configs`` (found by ``tracer.resources``)."""
