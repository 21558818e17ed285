"""Checks of the deployment artifacts: Dockerfile, deploy/compose.yaml, deploy/k8s/."""
