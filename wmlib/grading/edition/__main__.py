from wmlib.grading.edition.build import main

main()
