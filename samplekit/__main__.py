from samplekit.cli import main

main()
