"""The evaluation bench: dataset loaders (CLINC150, Banking77, SST-2, TweetEval, CUAD,
BFCL), metrics, the cascade evaluation and plots. Imported only by the commands that use it."""
