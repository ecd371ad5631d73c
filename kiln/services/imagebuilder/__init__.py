"""The Image Builder API's rules (docs/imagebuilder.md): components, recipes, configurations and
images, the builds running on kiln/services/builds."""
