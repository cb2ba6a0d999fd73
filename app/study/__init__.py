"""Ad tests: a study folder of stimuli and viewer sessions, placed in stimulus time and reported together.

    emolens study new DIR --stimulus ad_a.mp4 --stimulus ad_b.mp4 [--baseline 5] [--shuffle]
    emolens study add DIR RECORDING --participant P07 --stimulus-at 12.4
    emolens study report DIR
    emolens study info DIR

``emolens.study.file`` is the study file, ``sessions`` adds a session, ``aggregate`` computes the
per-second curves with their bootstrap bands, ``report`` writes the page, and ``api.Study`` gives
the same numbers as dataframes.
"""
