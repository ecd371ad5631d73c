"""Instance rules: RunInstances, Start/Stop/Reboot/Terminate, describe, attributes; the lifecycle steps."""
