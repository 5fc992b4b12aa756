"""The real-Istio meshes: ``--mesh kind`` (a kind cluster the harness makes) and ``--mesh cluster``.

| module | job |
|---|---|
| ``versions.py`` | every pinned version: kind node images per Kubernetes minor, Istio, the istioctl URL |
| ``tools.py`` | kind/kubectl/docker on PATH with install hints; istioctl download (checksum-verified); the lazy ``kubernetes`` import |
| ``commands.py`` | running a tool, bounded, errors with its stderr (the seam tests fake) |
| ``kindcluster.py`` | kind config, create/reuse/delete, the harness-owned kubeconfig, inotify hint |
| ``istio_install.py`` | istioctl install overlay and command lines |
| ``image.py`` | images built from the harness (the echo image; others by ``ImageSpec``): tag, docker build / push, loaded by ``kindcluster`` |
| ``manifests.py`` | Namespaces, Services, Deployments of a topology (pure dicts) |
| ``external.py`` | a case's ServiceEntry endpoints pointed at its external app's Service (pure) |
| ``api.py`` | server-side apply, get, list, delete, pod logs through the kubernetes client |
| ``apply.py`` | the apply/delete plan between two object sets (pure; objects render with ``harness.istio.manifest``) |
| ``podlog.py`` | reading container logs in increments (pure) |
| ``pods.py`` | a pod ready or not, and one line on what it is doing (pure) |
| ``workload.py`` | a Deployment beside the topology for the length of a block (``KubeMesh.workload``: the load worker pods) |
| ``portforward.py`` | ``kubectl port-forward pod/...`` with bounded readiness |
| ``mesh.py`` | ``KubeMesh``: the Mesh interface on Kubernetes |
| ``session.py`` | opening a KubeMesh from the options: prerequisites, cluster, Istio, image |
| ``plan.py`` | ``--dry-run``: every command and API write of a run, in order, without running any (pure) |

What it shares with the local mesh lives in ``harness/mesh/`` and nothing here imports ``mesh/local``:
the access-log join (``accesslog.py``) and the echo app's control client (``echo_client.py``).
"""
