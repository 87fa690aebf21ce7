/* gorp's version: "gorp X.Y.Z" and, when built from a git checkout, " (git COMMIT)".
 * Not for: file format versions (modelfile.h's MODELFILE_FORMAT_VERSION). */
#ifndef GORP_VERSION_H
#define GORP_VERSION_H

const char *gorp_version(void);

#endif
