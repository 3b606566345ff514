from provisioner.cli.main import app

app()
