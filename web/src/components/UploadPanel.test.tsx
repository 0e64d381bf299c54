import { createEvent, fireEvent, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { renderWithI18n } from '../test/render';
import { UploadPanel } from './UploadPanel';

const photo = () => new File(['jpeg'], 'photo.jpg', { type: 'image/jpeg' });

describe('UploadPanel', () => {
  it('takes a photo from the file picker', async () => {
    const onFile = vi.fn();
    renderWithI18n(<UploadPanel hasPhoto={false} error={null} onFile={onFile} />);
    const file = photo();
    await userEvent.upload(screen.getByLabelText('Photo to search with'), file);
    expect(onFile).toHaveBeenCalledWith(file);
    expect(screen.getByRole('button', { name: 'Choose a photo' })).toBeInTheDocument();
  });

  it('takes a dropped photo', () => {
    const onFile = vi.fn();
    renderWithI18n(<UploadPanel hasPhoto={false} error={null} onFile={onFile} />);
    const zone = screen.getByTestId('dropzone');
    const file = photo();
    fireEvent.dragEnter(zone, { dataTransfer: { files: [file], types: ['Files'] } });
    expect(zone).toHaveTextContent('Drop the photo to search');
    fireEvent.drop(zone, { dataTransfer: { files: [file], types: ['Files'] } });
    expect(onFile).toHaveBeenCalledWith(file);
    expect(zone).not.toHaveTextContent('Drop the photo to search');
  });

  it('takes a pasted image and leaves pasted text alone', () => {
    const onFile = vi.fn();
    renderWithI18n(<UploadPanel hasPhoto={false} error={null} onFile={onFile} />);
    const file = photo();
    const paste = createEvent.paste(window, {});
    Object.defineProperty(paste, 'clipboardData', { value: { files: [file], items: [] } });
    fireEvent(window, paste);
    expect(onFile).toHaveBeenCalledWith(file);
    const text = createEvent.paste(window, {});
    Object.defineProperty(text, 'clipboardData', { value: { files: [], items: [{ kind: 'string', getAsFile: () => null }] } });
    fireEvent(window, text);
    expect(onFile).toHaveBeenCalledTimes(1);
    expect(text.defaultPrevented).toBe(false);
  });

  it('shows a file error as an alert, in the chosen language', () => {
    renderWithI18n(<UploadPanel hasPhoto={false} error={{ code: 'not_an_image' }} onFile={() => {}} />, 'ko');
    expect(screen.getByRole('alert')).toHaveTextContent('이미지 파일이 아닙니다');
  });
});
