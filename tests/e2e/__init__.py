"""End-to-end scenarios: several clusters, a hub and agents; tests/e2e/k3d.sh is the Docker-based one."""
