from rovo_reconcile.cli import main

main()
