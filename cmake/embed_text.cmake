# Turns a text file into a C++ raw string literal: -DIN=<file> -DOUT=<file>.
file(READ ${IN} text)
file(WRITE ${OUT}.tmp "R\"ptbuild_text(${text})ptbuild_text\"\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
