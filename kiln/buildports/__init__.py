"""The build engine's real ports (kiln/services/builds/ports.py): EC2 over HTTP with botocore
(``ec2.HttpEc2``, what ``kiln build`` drives a live ``kiln serve`` with) and SSH into the
guests with paramiko (``ssh.SshConnector``). Used by kiln/cli/build.py and by the Image Builder
API (kiln/imagebuilder/), which subclasses ``HttpEc2`` to make the same calls in process."""
