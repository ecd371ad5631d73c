from kiln.cli.main import main

if __name__ == "__main__":  # guarded: the store's worker processes import the main module
    main()
