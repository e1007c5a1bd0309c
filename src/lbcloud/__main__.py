from lbcloud.entrypoints.cli.main import main

main()
