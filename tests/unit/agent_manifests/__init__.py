"""Tests of the agent packaging: install manifests, Dockerfile lint, the k3d script."""
