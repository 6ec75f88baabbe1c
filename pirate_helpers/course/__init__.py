"""The lessons' own machinery: what each Run button calls, the exercise checks, lesson 06's
comparison runs, lesson 08's real partition (two network namespaces), the one-line "run this
cell first" hint and the workshop's checks. The patterns themselves are the modules one level
up."""
