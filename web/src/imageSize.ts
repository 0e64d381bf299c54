/** Decodes a photo in the browser to learn its natural size; rejects when it is not a readable image. */
export function loadImageSize(url: string): Promise<{ width: number; height: number }> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      if (img.naturalWidth > 0 && img.naturalHeight > 0) resolve({ width: img.naturalWidth, height: img.naturalHeight });
      else reject(new Error('the image has no size'));
    };
    img.onerror = () => reject(new Error('the browser could not decode the image'));
    img.src = url;
  });
}
