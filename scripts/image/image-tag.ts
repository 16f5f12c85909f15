/** The tag `make image` and the image test build: the one k8s/overlays/local deploys (the image test checks it). */
export const IMAGE_TAG = 'messaging-server:dev';
