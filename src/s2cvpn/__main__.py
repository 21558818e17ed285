from s2cvpn.cli import main

main()
